"""The Procgen track (the thesis's protocols A): suites of a super-task and two sub-tasks
(:mod:`.suite`), their merge plans (:mod:`.plan`), PPO training (:mod:`.ppo`), evaluation
(:mod:`.evaluate`), merging trained actors (:mod:`.merging`), the protocol that runs it all
through the run store (:mod:`.protocol`, laid out by :mod:`.layout`), the leaderboard
(:mod:`.report`), and the commands (:mod:`.cli`, :mod:`.env_cli`)."""
