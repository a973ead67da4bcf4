"""What one call costs on the DynamoDB-compatible server the benchmark runs against, made by
boto3 (AWS's SDK for Python) on the benchmark's own table: a strongly consistent Query of the
largest partition key (every integration) for two items, and a conditional PutItem of a new
key. Prints the two medians in milliseconds. Arguments: the endpoint and the table."""
import statistics, sys, time, uuid
import boto3
endpoint, table = sys.argv[1], sys.argv[2]
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-west-1",
                      aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")
def median_ms(call, runs=9):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
query = median_ms(lambda: client.query(
    TableName=table, ConsistentRead=True, Limit=2,
    KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
    ExpressionAttributeValues={":pk": {"S": "meta/integration"}, ":low": {"S": "meta/integration/"},
                               ":high": {"S": "meta/integration/~"}}))
put = median_ms(lambda: client.put_item(
    TableName=table, ConditionExpression="attribute_not_exists(sk)",
    Item={"pk": {"S": "bench/calls"}, "sk": {"S": f"bench/calls/{uuid.uuid4()}"}, "v": {"B": b"x" * 512}}))
print(f"{query:.2f} {put:.2f}")
