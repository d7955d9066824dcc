"""The paper's published figures (protocols B), printed beside ours in the report."""

# Table 1: % of pre-merge return, Hopper / HalfCheetah, transformer size (expert data, random init)
TABLE1 = {
    "Original": (100, 100, 2.0),
    "Frozen Transformer from hopper": (100, 3, 1.0),
    "Frozen Transformer from halfcheetah": (48, 100, 1.0),
    "transformer (MFF)": (61, 86, 1.0),
    "attention+mlp (MFF)": (90, 98, 1.0026),
    "attention (MFF)": (101, 101, 1.6682),
    "attention (M)": (79, 98, 1.6682),
}
TABLE1_ENVS = ("hopper", "halfcheetah")

# Table 2: D4RL normalised score, original / random / identity / removed attention
TABLE2 = {
    ("medium-expert", "halfcheetah"): (42.9, 41.9, 40.9, 40.5),
    ("medium-expert", "hopper"): (108.3, 77.2, 66.8, 74.1),
    ("medium-expert", "walker2d"): (109.4, 84.6, 82.6, 86.9),
    ("medium", "halfcheetah"): (40.2, 39.3, 40.5, 39.1),
    ("medium", "hopper"): (76.4, 52.2, 52.6, 52.2),
    ("medium", "walker2d"): (75.3, 74.1, 76.2, 74.3),
    ("expert", "halfcheetah"): (89.8, 89.2, 89.2, 86.2),
    ("expert", "hopper"): (108.8, 67.1, 67.9, 68.8),
    ("expert", "walker2d"): (109.4, 109.7, 109.8, 109.8),
}

# Table 3 (ChibiT init + co-training, medium data): % of pre-merge return per env
TABLE3 = {
    ("attention", "M"): {"hopper-halfcheetah": {"hopper": 99.9, "halfcheetah": 101.6},
                         "halfcheetah-walker2d": {"halfcheetah": 100.3, "walker2d": 102.0},
                         "hopper-walker2d": {"hopper": 101.4, "walker2d": 102.0},
                         "all": {"hopper": 98.9, "halfcheetah": 99.4, "walker2d": 103.1}},
    ("attention+mlp", "M"): {"hopper-halfcheetah": {"hopper": 54.5, "halfcheetah": 83.0},
                             "halfcheetah-walker2d": {"halfcheetah": 64.2, "walker2d": 95.5},
                             "hopper-walker2d": {"hopper": 70.5, "walker2d": 0.3},
                             "all": {"hopper": 62.0, "halfcheetah": 45.5, "walker2d": 0.0}},
    ("attention+mlp", "MFF"): {"hopper-halfcheetah": {"hopper": 94.4, "halfcheetah": 101.3},
                               "halfcheetah-walker2d": {"halfcheetah": 100.6, "walker2d": 100.3},
                               "hopper-walker2d": {"hopper": 94.9, "walker2d": 100.7},
                               "all": {"hopper": 88.4, "halfcheetah": 99.9, "walker2d": 100.5}},
}
TABLE3_PRE_MERGE = {"hopper": 64.5, "halfcheetah": 40.7, "walker2d": 77.9}

# Published Decision Transformer scores on D4RL (for judging single-task DTs)
DT_SCORES = {
    ("halfcheetah", "medium"): 42.6, ("hopper", "medium"): 67.6, ("walker2d", "medium"): 74.0,
    ("halfcheetah", "medium-expert"): 86.8, ("hopper", "medium-expert"): 107.6, ("walker2d", "medium-expert"): 108.1,
}
