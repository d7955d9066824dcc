"""The games, by name. Each module implements ``envs.core.Game``."""

from envs.games.fruitbot import Fruitbot
from envs.games.starpilot import Starpilot

GAMES = {"starpilot": Starpilot, "fruitbot": Fruitbot}
