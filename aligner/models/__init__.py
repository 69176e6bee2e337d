"""Models: loading (torchaudio bundles, Hugging Face folders, our own format, the
packaged default), the emission stage, the log-mel front end, layer-wise
features, and the :class:`~aligner.models.alignment_model.AlignmentModel`
record that ties a network to its labels and decoding settings."""
