pip install -e docs/examples/my_plugins   # any package of yours: Hercules needs no change
