"""The learner's commands: the workspace, the checklist on screen, start, watch, check, hint, run."""
