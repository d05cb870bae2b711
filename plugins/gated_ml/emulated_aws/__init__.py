"""Emulated AWS: a moto server whose jobs the local runners execute (``[gated_ml] target = aws``, offline).

One process (:mod:`.server`) serves moto's AWS API on a loopback port through :mod:`.app`,
which adds what moto lacks and runs the jobs moto only records: the Glue script on local
Spark, training, tuning trials, batch transform and the endpoint's model server, on data
staged between moto's in-memory S3 and a staging lake (:mod:`.staging`). Everything it
adds to moto is pinned to one moto version (:mod:`.moto_backends`).
"""
