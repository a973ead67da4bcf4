"""The baseline of the DynamoDBStore benchmark: the same put, get and conditional put calls
through boto3 (AWS's own SDK for Python) against the same server, one client, nothing else.
Prints operations/s. Arguments: the endpoint and the number of operations."""
import sys, time
import boto3
endpoint, operations = sys.argv[1], int(sys.argv[2])
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-west-1",
                      aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")
table = "baseline"
client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
value = b"x" * 512
start, done, i = time.perf_counter(), 0, 0
while done < operations:
    key = {"pk": {"S": "bench/k"}, "sk": {"S": f"bench/k{i % 1000}"}}
    client.put_item(TableName=table, Item={**key, "v": {"B": value}, "ver": {"N": str(2 * i + 1)}})
    client.get_item(TableName=table, Key=key, ConsistentRead=True)
    client.put_item(TableName=table, Item={**key, "v": {"B": value}, "ver": {"N": str(2 * i + 2)}},
                    ConditionExpression="ver = :ver", ExpressionAttributeValues={":ver": {"N": str(2 * i + 1)}})
    done, i = done + 3, i + 1
print(int(operations / (time.perf_counter() - start)))
