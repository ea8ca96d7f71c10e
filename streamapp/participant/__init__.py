"""What the saga's participant services share.

handler.py: dedupe by command id, stored answers, expiry (pure); service.py: the one
agent shape (command -> rules -> answer event) each participant's agents.py builds;
topics.py: the participants' topics. Importing the package registers nothing."""
