"""What the agent does when told: each action returns a result free of personal data."""
