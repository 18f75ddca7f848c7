#!/usr/bin/env python3
"""Translate a SAM template to plain CloudFormation offline, as `sam deploy` would have
CloudFormation do it, so that cfn-lint can check the generated resources too.

Usage: sam_translate.py TEMPLATE.yaml > translated.json

No AWS call is made:
- the managed-policy loader is a stub backed by the policy map that aws-sam-translator ships
  (instead of listing policies through IAM);
- the region comes from AWS_REGION / AWS_DEFAULT_REGION, defaulting to us-east-1;
- local CodeUri paths are replaced by a placeholder S3 location, as `sam validate` does
  (`sam package` would upload them).
"""

import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))

from samtranslator.internal.managed_policies import get_bundled_managed_policy_map  # noqa: E402
from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.arn_generator import ArnGenerator  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

PLACEHOLDER_CODE_URI = "s3://placeholder-bucket/placeholder-key.zip"


class OfflineManagedPolicyLoader:
    """Duck-types samtranslator's ManagedPolicyLoader without an IAM client."""

    def load(self):
        partition = ArnGenerator.get_partition_name()
        return dict(get_bundled_managed_policy_map(partition) or {})


def replace_local_code_uris(template):
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            key = "CodeUri" if resource["Type"] == "AWS::Serverless::Function" else "ContentUri"
            uri = props.get(key)
            if isinstance(uri, str) and not uri.startswith("s3://"):
                props[key] = PLACEHOLDER_CODE_URI


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        template = yaml_parse(f.read())
    replace_local_code_uris(template)
    try:
        translated = transform(template, {}, OfflineManagedPolicyLoader())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"sam-translator: {cause.message}", file=sys.stderr)
        sys.exit(1)
    json.dump(translated, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
