"""Front door for the network: Twilio status callbacks and inbound WhatsApp messages (``ews serve``)."""
