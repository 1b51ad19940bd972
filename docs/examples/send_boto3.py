"""Send records to `tideline up` with boto3, as to Kinesis Data Firehose.

    python3 docs/examples/send_boto3.py --endpoint-url http://127.0.0.1:4566 [--entity order-7]

boto3 needs some credentials and a region even though `tideline up` checks
neither; this script sets harmless ones when none are configured. It sends an
order's three events in one PutRecordBatch call, plus one record without a
`type`, which ingest refuses with a reason (see /_tideline/dead-letters).
"""

import argparse
import json
import os
import sys

import boto3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:4566")
    parser.add_argument("--stream", default="tideline-ingest")
    parser.add_argument("--entity", default="order-7")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    firehose = boto3.client(
        "firehose",
        endpoint_url=args.endpoint_url,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )
    events = [
        {"type": "OrderPlaced", "data": {"total": 42, "customer": "Zoë"}},
        {"type": "OrderPaid", "data": {"method": "card"}},
        {"type": "OrderShipped", "data": {"carrier": "PostNord"}},
    ]
    records = [
        {"Data": json.dumps({"entity_id": args.entity, "id": f"{args.entity}-{e['type']}", **e}).encode()}
        for e in events
    ]
    # No `type`: refused at ingest, with the reason, never blocking the others.
    records.append({"Data": json.dumps({"entity_id": args.entity, "data": {}}).encode()})
    answer = firehose.put_record_batch(DeliveryStreamName=args.stream, Records=records)
    print(f"FailedPutCount: {answer['FailedPutCount']} of {len(records)}")
    for i, r in enumerate(answer["RequestResponses"]):
        print(f"  record {i}: {r.get('ErrorCode') or 'accepted'} {r.get('ErrorMessage') or r.get('RecordId', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
