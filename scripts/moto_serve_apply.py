"""moto server for scripts/apply-terraform.sh, with moto's own stream event
source mappings switched off, and rules' Lambda targets not delivered.

Terraform creates the stream -> event-emitter mapping; moto keeps it and, on
every write to the table, "invokes" the deployed function (the test fixture
zip) with the stream records, then drops them from the stream. The roles
check plays the event source mappings itself, with the emitter's role, so it
must find the records on the stream: here the records are kept and nothing
is dispatched. The mapping itself is still created, read and destroyed by
Terraform as usual.

moto 5.2 cannot deliver an EventBridge rule's event to a Lambda target (it
raises NotImplementedError, and PutEvents answers 500): the consumer rule's
Lambda target is skipped; the rule's other targets and the archive are
delivered as usual.

usage: moto_serve_apply.py -H 127.0.0.1 -p PORT
"""

import sys

from moto.dynamodb.models import table as ddb_table
from moto.events import models as events_models
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

_send_to_targets = events_models.Rule.send_to_targets


def send_to_targets_but_lambda(self, *args, **kwargs):
    targets = self.targets
    self.targets = [t for t in targets if ":lambda:" not in t["Arn"]]
    try:
        return _send_to_targets(self, *args, **kwargs)
    finally:
        self.targets = targets


events_models.Rule.send_to_targets = send_to_targets_but_lambda

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
