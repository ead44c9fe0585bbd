"""``mcastkit plan``: what a config change does to the deployed stacks, worked out offline."""
