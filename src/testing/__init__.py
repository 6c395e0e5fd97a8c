"""Test infrastructure: the tiny random Qwen-VL checkpoints that tests and smoke configs train offline."""
