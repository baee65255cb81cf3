hercules components list        # every registered plugin, with its config fields
hercules recipe fields training  # the recipe fields under `training`, with types, defaults and descriptions
