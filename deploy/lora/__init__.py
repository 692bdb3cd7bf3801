"""LoRA adapters for the default model: a project-written instruction set, training, evaluation."""
