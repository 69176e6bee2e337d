"""Training: CTC training of character models (:mod:`.ctc`, configurations in
:mod:`.configs`), the frame-level phone model (:mod:`.phone`), adaptation
to a corpus (:mod:`.adapt`), checkpoint averaging (:mod:`.average`) and
the synthetic speech they learn from (:mod:`.synth`)."""
