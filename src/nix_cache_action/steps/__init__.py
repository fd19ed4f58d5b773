"""The action's steps: build (the root action), plan and aggregate (its sub-actions)."""
