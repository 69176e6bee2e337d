"""Corpus workflows: folders in the Montreal Forced Aligner layout
(:mod:`.files`), aligning them on this machine (:mod:`.align`) or on a Ray
cluster (:mod:`.ray_cluster`)."""
