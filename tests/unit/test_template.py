"""template.yaml, read as CloudFormation reads it: the deploy-time promises of the stack, checked by a test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
MAX_MINUTES_TO_DLQ = 75
SECRET_VARIABLES = {"API_KEYS", "LLM_PROVIDERS", "EMBEDDINGS_API_KEY", "RERANKER_API_KEY", "QDRANT_API_KEY"}
SECRET_VARIABLES |= {"NEO4J_PASSWORD"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed, errors = decode(str(ROOT / "template.yaml"))
    assert not errors, errors
    return parsed


def resources(template, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def functions(template) -> dict[str, dict]:
    return resources(template, "AWS::Serverless::Function")


def is_conditional_on(value: Any, condition: str) -> bool:
    """`!If [condition, something, !Ref AWS::NoValue]`."""
    return (
        isinstance(value, dict)
        and list(value) == ["Fn::If"]
        and value["Fn::If"][0] == condition
        and value["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    )


def referenced_parameters(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["Ref"]} if isinstance(value.get("Ref"), str) else set()
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found |= set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
        return found.union(*(referenced_parameters(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(referenced_parameters(v) for v in value))
    return set()


def bucket_name_patterns(template) -> list[str]:
    """Every place the documents bucket is named (the bucket, the queue policy, the ingest policy)."""
    found = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            sub = value.get("Fn::Sub")
            if isinstance(sub, list) and "graphrag-${AWS::AccountId}" in sub[0]:
                found.append(sub[0].removeprefix("arn:${AWS::Partition}:s3:::"))
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(template["Resources"])
    return found


def test_the_bucket_name_is_valid_for_any_stack_name_and_region(template):
    bucket = template["Resources"]["DocumentsBucket"]["Properties"]
    assert "AWS::StackName" not in str(bucket["BucketName"])
    names = bucket_name_patterns(template)
    assert len(names) == 3 and len(set(names)) == 1  # bucket, queue policy condition, ingest read policy
    longest = names[0].replace("${AWS::AccountId}", "123456789012").replace("${AWS::Region}", "ap-southeast-7")
    longest = longest.replace("${StackSuffix}", "0123abcd")  # first group of the stack id's UUID
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{2,62}", longest), longest
    suffix = bucket["BucketName"]["Fn::Sub"][1]["StackSuffix"]
    assert "AWS::StackId" in str(suffix)


def test_missing_stores_fail_before_anything_is_created(template):
    rules = template["Rules"]
    asserted = set().union(*(referenced_parameters(rule["Assertions"]) for rule in rules.values()))
    assert {"QdrantUrl", "EmbeddingsUrl"} <= asserted
    for name in ("QdrantUrl", "EmbeddingsUrl"):
        rule = next(r for r in rules.values() if name in referenced_parameters(r["Assertions"]))
        assertion = rule["Assertions"][0]
        assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}
        assert name in assertion["AssertDescription"]
    keys = next(r for r in rules.values() if "ApiKeysSecretName" in referenced_parameters(r["Assertions"]))
    assert "ApiKeysParameterName" in referenced_parameters(keys["Assertions"])


def test_the_vpc_is_wired_only_when_subnets_are_given(template):
    vpc = template["Globals"]["Function"]["VpcConfig"]
    assert is_conditional_on(vpc, "HasVpc")
    assert vpc["Fn::If"][1] == {
        "SubnetIds": {"Ref": "VpcSubnetIds"},
        "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"},
    }
    assert referenced_parameters(template["Conditions"]["HasVpc"]) == {"VpcSubnetIds"}
    assert template["Parameters"]["VpcSubnetIds"]["Default"] == ""
    rule = template["Rules"]["VpcNeedsSecurityGroups"]
    assert referenced_parameters(rule["RuleCondition"]) == {"VpcSubnetIds"}
    assert referenced_parameters(rule["Assertions"]) == {"VpcSecurityGroupIds"}


def environments(template) -> list[tuple[str, dict]]:
    found = [("Globals", template["Globals"]["Function"]["Environment"]["Variables"])]
    for name, function in functions(template).items():
        found.append((name, function["Properties"].get("Environment", {}).get("Variables", {})))
    return found


def test_no_secret_reaches_a_function_environment(template):
    parameters = template["Parameters"]
    assert not [name for name, p in parameters.items() if p.get("NoEcho")], "a secret value is a parameter"
    for owner, variables in environments(template):
        assert not SECRET_VARIABLES & set(variables), f"{owner} sets a secret's value"
        for variable, value in variables.items():
            for parameter in referenced_parameters(value) & set(parameters):
                lowered = parameter.lower()
                if any(word in lowered for word in ("password", "apikey", "providers", "secret")):
                    assert parameter.endswith(("SecretName", "ParameterName")), (owner, variable, parameter)
                    assert variable.endswith(("_SECRET", "_PARAM")), (owner, variable)
    names = set(template["Globals"]["Function"]["Environment"]["Variables"])
    expected = {f"{v}_SECRET" for v in SECRET_VARIABLES} | {"FALKORDB_URL_SECRET", "API_KEYS_PARAM"}
    assert expected <= names


def test_the_code_reads_every_secret_name_the_template_sets():
    from gateway_core.secrets import SECRET_SETTINGS
    from gateway_core.settings import Settings

    template_names = {"LLM_PROVIDERS", "EMBEDDINGS_API_KEY", "RERANKER_API_KEY", "QDRANT_API_KEY"}
    template_names |= {"NEO4J_PASSWORD", "FALKORDB_URL"}
    assert {f.upper() for f in SECRET_SETTINGS} == template_names
    assert {"api_keys_secret", "api_keys_param"} <= set(Settings.model_fields)


def policy_statements(template) -> list[Any]:
    return template["Resources"]["SecretsReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]


def test_iam_reads_hierarchical_ssm_names_and_exactly_the_named_secrets(template):
    statements = policy_statements(template)
    ssm = next(s for s in statements if is_conditional_on(s, "HasApiKeysParameter"))["Fn::If"][1]
    assert ssm["Action"] == "ssm:GetParameter"
    assert ssm["Resource"]["Fn::Sub"].endswith(":parameter${ApiKeysParameterName}")  # no "parameter//graphrag"
    pattern = template["Parameters"]["ApiKeysParameterName"]["AllowedPattern"]
    assert re.fullmatch(pattern, "/graphrag/keys") and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "graphrag/keys")
    secrets = next(s for s in statements if is_conditional_on(s, "HasAnySecret"))["Fn::If"][1]
    assert secrets["Action"] == "secretsmanager:GetSecretValue"
    for resource in secrets["Resource"]:
        ((condition, arn, _),) = resource.values()
        assert condition.startswith("Has") and arn["Fn::Sub"].endswith("SecretName}-??????")
    for parameter in (p for p in template["Parameters"] if p.endswith("SecretName")):
        assert re.fullmatch(template["Parameters"][parameter]["AllowedPattern"], "graphrag/neo4j")


def test_a_customer_managed_kms_key_can_be_used(template):
    kms = next(s for s in policy_statements(template) if is_conditional_on(s, "HasKmsKey"))["Fn::If"][1]
    assert kms["Action"] == "kms:Decrypt" and kms["Resource"] == {"Ref": "KmsKeyArn"}
    assert is_conditional_on(template["Globals"]["Function"]["KmsKeyArn"], "HasKmsKey")
    for function in functions(template).values():
        assert {"Ref": "SecretsReadPolicy"} in function["Properties"]["Policies"]


def test_concurrency_and_throttling_are_parameters_with_defaults(template):
    parameters = template["Parameters"]
    for name, function in functions(template).items():
        reserved = function["Properties"]["ReservedConcurrentExecutions"]
        assert reserved["Fn::If"][2] == {"Ref": "AWS::NoValue"}
        (parameter,) = referenced_parameters(reserved["Fn::If"][1])
        assert int(parameters[parameter]["Default"]) > 0, name
    route = template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
        assert int(parameters[route[key]["Ref"]]["Default"]) > 0
    source = functions(template)["IngestFunction"]["Properties"]["Events"]["Documents"]["Properties"]
    maximum = parameters[source["ScalingConfig"]["MaximumConcurrency"]["Ref"]]
    assert 2 <= int(maximum["Default"]) <= int(parameters["IngestReservedConcurrency"]["Default"])


def test_a_poison_record_reaches_the_dlq_within_75_minutes_and_alarms(template):
    queue = template["Resources"]["IngestQueue"]["Properties"]
    ingest = functions(template)["IngestFunction"]["Properties"]
    source = ingest["Events"]["Documents"]["Properties"]
    visibility, receives = int(queue["VisibilityTimeout"]), int(queue["RedrivePolicy"]["maxReceiveCount"])
    assert visibility >= int(ingest["Timeout"]) + int(source.get("MaximumBatchingWindowInSeconds", 0))
    assert visibility * receives <= MAX_MINUTES_TO_DLQ * 60
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert ingest["Environment"]["Variables"]["INGEST_TIMEOUT_S"] == str(ingest["Timeout"])
    (alarm,) = resources(template, "AWS::CloudWatch::Alarm").values()
    props = alarm["Properties"]
    assert props["Namespace"] == "AWS/SQS" and props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert props["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["IngestDeadLetterQueue", "QueueName"]}}
    ]
    assert float(props["Threshold"]) == 1 and props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert is_conditional_on(props["AlarmActions"], "HasAlarmTopic")


def test_every_function_logs_to_its_own_group_with_retention(template):
    groups = resources(template, "AWS::Logs::LogGroup")
    used = set()
    for name, function in functions(template).items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert group in groups and group not in used, name
        used.add(group)
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert "/aws/lambda/" not in str(group["Properties"].get("LogGroupName", "")), name  # see DESIGN's trap
    access = template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]
    assert access["DestinationArn"]["Fn::GetAtt"][0] in groups and access["Format"]


def test_cors_origins_are_a_parameter(template):
    cors = template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert is_conditional_on(cors, "HasCors")
    assert cors["Fn::If"][1]["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowedOrigins"}]}
    assert template["Parameters"]["CorsAllowedOrigins"]["Default"] == ""


def test_noncurrent_versions_expire(template):
    bucket = template["Resources"]["DocumentsBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and "NoncurrentDays" in r["NoncurrentVersionExpiration"] for r in rules)
    events = {c["Event"] for c in bucket["NotificationConfiguration"]["QueueConfigurations"]}
    assert events == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}


def test_the_layer_is_built_by_its_makefile(template):
    ((name, layer),) = resources(template, "AWS::Serverless::LayerVersion").items()
    assert layer["Metadata"]["BuildMethod"] == "makefile" and layer["Metadata"]["BuildArchitecture"] == "arm64"
    makefile = (ROOT / layer["Properties"]["ContentUri"] / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^build-{name}:", makefile, re.MULTILINE)


def test_every_checkov_skip_is_justified(template):
    skips = [
        (name, skip)
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]) and len(skip.get("comment", "")) > 20, name


def test_the_example_samconfig_names_real_parameters_and_every_required_one(template):
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml.example").read_text(encoding="utf-8"))
    overrides = config["default"]["deploy"]["parameters"]["parameter_overrides"]
    names = {item.split("=", 1)[0] for item in overrides}
    assert names <= set(template["Parameters"])
    assert {"QdrantUrl", "EmbeddingsUrl", "ApiKeysSecretName"} <= names
    assert not any("sk-" in item or "password=" in item.lower() for item in overrides)
