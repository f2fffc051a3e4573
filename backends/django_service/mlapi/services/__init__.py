"""Business flow of the Django backend (HackSoft style: views stay thin, services do the work)."""
