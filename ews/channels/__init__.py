"""Edge out: channels that deliver rendered messages (the dry-run outbox now; Twilio SMS/WhatsApp next)."""
