hercules recipe validate recipes/quickstart.yaml                    # check it against the schema
hercules recipe show recipes/quickstart.yaml --set training.lr=3e-4  # every field, defaults filled in
hercules recipe run recipes/quickstart.yaml --set seed=1             # run it, with an override
hercules recipe run recipes/quickstart.yaml --resume                 # continue from the latest checkpoint
