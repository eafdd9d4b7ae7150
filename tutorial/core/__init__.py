"""What every room shares: the step manifest, the tasks, serving a step, Redis and sockets."""
