hercules recipe run recipes/quickstart.yaml
