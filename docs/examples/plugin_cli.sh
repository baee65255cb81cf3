# my_plugins installed (or PYTHONPATH=docs/examples/my_plugins): the recipe's `plugins` list imports it
hercules recipe validate docs/examples/plugin_recipe.yaml
