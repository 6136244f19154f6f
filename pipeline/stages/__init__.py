"""The stages of the pipeline: the work itself, callable without a broker; actors only wire it to queues."""
