"""moto server for scripts/apply-terraform.sh, with moto's own stream event
source mappings switched off.

Terraform creates the stream -> event-emitter mapping; moto keeps it and, on
every write to the table, "invokes" the deployed function (the test fixture
zip) with the stream records, then drops them from the stream. The roles
check plays the event source mappings itself, with the emitter's role, so it
must find the records on the stream: here the records are kept and nothing
is dispatched. The mapping itself is still created, read and destroyed by
Terraform as usual.

usage: moto_serve_apply.py -H 127.0.0.1 -p PORT
"""

import sys

from moto.dynamodb.models import table as ddb_table
from moto.server import main


def add_without_dispatch(self, old, new):
    view = self.table.stream_specification["StreamViewType"]
    if old is None:
        event_name = "INSERT"
    elif new is None:
        event_name = "REMOVE"
    else:
        event_name = "MODIFY"
    seq = len(self.items) + self.starting_sequence_number
    self.items.append(ddb_table.StreamRecord(self.table, view, event_name, old, new, seq))


ddb_table.StreamShard.add = add_without_dispatch

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
