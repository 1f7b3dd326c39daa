"""Fine-tuning by head swap (classification: finetune.classify) and anomaly scores (finetune.anomaly).

`Classifier` and `AnomalyScorer` are imported on first use, so that `import finetune` stays light.
"""

__all__ = ["AnomalyScorer", "Classifier"]


def __getattr__(name: str):
    if name == "AnomalyScorer":
        from finetune.scorer import AnomalyScorer

        return AnomalyScorer
    if name == "Classifier":
        from finetune.model import Classifier

        return Classifier
    raise AttributeError(f"module 'finetune' has no attribute {name!r}")
