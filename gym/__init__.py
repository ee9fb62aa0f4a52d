"""The project's LunarLander helpers, in the folder the seed named ``gym/``.

Why this file: without it ``gym`` is a namespace package, and any installed package named ``gym``
(the legacy OpenAI Gym) wins the import, so ``import gym.lander_environment`` fails. As a regular
package, the project's folder (first on ``sys.path`` when run from the project) is the one found.
"""
