"""The built-in configs, shipped with the package as data: branch maps of the readers (data/), b-tag
working points (btag/), generation settings (generate/) and the presets of the tokenizer, backbone and
fine-tuning CLIs (tokenizer/, backbone/, finetune/).

A config path written as `configs/...` is looked up in the working folder first and, where no such
file is there, here (`common.config.config_path`), so the CLIs' defaults work from any folder.
"""
