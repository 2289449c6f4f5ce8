"""Datasets: readers that return :class:`~weakseg.data.sample.Sample`."""
