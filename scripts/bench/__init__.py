"""PepperPy's benchmarks: each module measures one issue's figures against a baseline taken in the same run."""
