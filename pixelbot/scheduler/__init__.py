"""Scheduled jobs (APScheduler 3.11 on the bot's event loop): ``jobs`` says what each job
does (each a thin call into a service the CLI reaches too), ``runner`` runs them on time,
one at a time per job, and records every run."""
