"""Assessment -> CDS Hooks cards, with texts from the top-level cards/ templates."""
