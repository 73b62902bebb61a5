"""The embedded MQTT 3.1.1 broker (``testbed broker``), used when Mosquitto is missing."""
