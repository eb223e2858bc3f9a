"""Experiment configs: one module per experiment, `get_config(arg)` -> ConfigDict.

`python launch.py --config=configs/X.py[:tiny]` loads one; configs reuse each other as modules
(`from configs import cyclegan_fer`), with the repository root on the path.
"""
