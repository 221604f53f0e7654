"""Models arrive with the credits (billing) and AI activity (usage) issues."""
