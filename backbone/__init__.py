"""GPT backbone over token sequences: next- and masked-token pretraining (`python -m backbone.pretrain`),
a continuous density head over each object's kinematics, cached sampling and evaluation against the
statistical floor. See docs/backbone.md."""
