"""Prepares the roles check of scripts/apply-terraform.sh on moto.

After `terraform apply`, with moto's IAM enforcement still off:

1. creates an operator user (the test kit plays the event sources and reads
   results with it);
2. gives each Lambda role its "moto view" (below);
3. assumes every Lambda function's own role (sts:AssumeRole on the role
   Terraform created) and writes the credentials to a JSON file;
4. switches enforcement on (POST /moto-api/reset-auth, INITIAL_NO_AUTH_ACTION_COUNT 0).

The moto view of a role's inline policy. moto 5.2 evaluates an IAM request
against the resource "*" for every service except SQS, IAM and STS (only those
responses name their resource), and a Resource of an ARN never matches "*";
and it names a request's action after the API operation, where AWS authorizes
some operations with another action (SendMessageBatch with sqs:SendMessage,
TransactWriteItems per item with PutItem/UpdateItem). So, and only for moto:
- a statement whose actions are not all SQS gets Resource "*" (the actions
  stay exactly as planned; the resources are checked statically against the
  planned policy by crates/tideline-lambdas/tests/deployed_roles.rs);
- the operation names AWS authorizes through a granted action are added next
  to it (AWS_AUTHORIZED_BY below).
Statements with conditions (KMS) are kept as they are: the code never calls
KMS itself.

Bucket policies get a moto view too: moto evaluates a bucket policy's
transport conditions against its own endpoint, plain HTTP here (no
`aws:SecureTransport`, no `s3:TlsVersion`), so the lake's "deny insecure
transport" and "deny old TLS" statements would refuse every call, where on
AWS every SDK call is TLS 1.2 or later. Only statements conditioned on those
two keys are left out; the rest of each bucket policy stays.

usage: moto_roles.py <endpoint> <state.json> <credentials-out.json>
"""

import json
import sys
import urllib.request

import boto3

# operation moto checks -> the action AWS checks for it
AWS_AUTHORIZED_BY = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "dynamodb:TransactWriteItems": "dynamodb:PutItem",
    "dynamodb:TransactGetItems": "dynamodb:GetItem",
    # The API Gateway Management API (signing name execute-api): AWS
    # authorizes its three operations with execute-api:ManageConnections.
    "execute-api:PostToConnection": "execute-api:ManageConnections",
    "execute-api:DeleteConnection": "execute-api:ManageConnections",
    "execute-api:GetConnection": "execute-api:ManageConnections",
}


def resources(module):
    for r in module.get("resources", []):
        yield r
    for child in module.get("child_modules", []):
        yield from resources(child)


def as_list(v):
    return v if isinstance(v, list) else [v]


def moto_view(policy):
    doc = json.loads(policy)
    for st in doc.get("Statement", []):
        if st.get("Effect") != "Allow":
            continue
        actions = as_list(st.get("Action", []))
        for op, action in AWS_AUTHORIZED_BY.items():
            if action in actions and op not in actions:
                actions.append(op)
        st["Action"] = actions
        if not all(a.startswith("sqs:") for a in actions):
            st["Resource"] = "*"
    return json.dumps(doc)


# Condition keys about the connection, which moto reads off its plain-HTTP endpoint.
TRANSPORT_KEYS = ("aws:SecureTransport", "s3:TlsVersion")


def bucket_policy_moto_view(policy):
    doc = json.loads(policy)
    kept, dropped = [], []
    for st in doc.get("Statement", []):
        conditions = st.get("Condition", {})
        if any(k in keys for keys in conditions.values() for k in TRANSPORT_KEYS):
            dropped.append(st.get("Sid", "?"))
        else:
            kept.append(st)
    doc["Statement"] = kept
    return json.dumps(doc), dropped


def main():
    endpoint, state_path, out_path = sys.argv[1:4]
    with open(state_path) as f:
        state = json.load(f)
    all_resources = list(resources(state["values"]["root_module"]))
    # The region is in every ARN the state holds.
    function_arns = [
        r["values"]["arn"] for r in all_resources if r["type"] == "aws_lambda_function"
    ]
    region = function_arns[0].split(":")[3]
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=region
    )
    iam = session.client("iam", endpoint_url=endpoint)
    sts = session.client("sts", endpoint_url=endpoint)

    iam.create_user(UserName="tideline-operator")
    iam.put_user_policy(
        UserName="tideline-operator",
        PolicyName="operator",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="tideline-operator")["AccessKey"]
    out = {
        "region": region,
        "operator": {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]},
        "functions": {},
    }

    for r in all_resources:
        if r["type"] == "aws_iam_role_policy":
            v = r["values"]
            iam.put_role_policy(RoleName=v["role"], PolicyName=v["name"], PolicyDocument=moto_view(v["policy"]))

    s3 = session.client(
        "s3", endpoint_url=endpoint, config=boto3.session.Config(s3={"addressing_style": "path"})
    )
    for r in all_resources:
        if r["type"] == "aws_s3_bucket_policy":
            v = r["values"]
            policy, dropped = bucket_policy_moto_view(v["policy"])
            if dropped:
                s3.put_bucket_policy(Bucket=v["bucket"], Policy=policy)
                print(f"bucket {v['bucket']}: left out for moto (plain HTTP, no TLS): {', '.join(dropped)}")

    for r in all_resources:
        if r["type"] != "aws_lambda_function":
            continue
        v = r["values"]
        creds = sts.assume_role(RoleArn=v["role"], RoleSessionName=v["function_name"][:64])["Credentials"]
        out["functions"][v["function_name"]] = {
            "role_arn": v["role"],
            "access_key_id": creds["AccessKeyId"],
            "secret_access_key": creds["SecretAccessKey"],
            "session_token": creds["SessionToken"],
        }

    with open(out_path, "w") as f:
        json.dump(out, f, indent=2)

    # moto 5.2's server reads the body as the bare count (the
    # INITIAL_NO_AUTH_ACTION_COUNT): enforcement from the next request on.
    req = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    urllib.request.urlopen(req).read()
    print(f"moto IAM enforcement on; {len(out['functions'])} function roles assumed")


if __name__ == "__main__":
    main()
