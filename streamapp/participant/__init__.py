"""What the saga's participant services share.

handler.py: dedupe by command id, stored answers, expiry (pure); service.py: the one
agent shape (command -> rules -> answer event) that each participant's agents.py builds.
The participants' topics and their partitions are in the catalogue (streamapp.topics).
Importing the package registers nothing."""
