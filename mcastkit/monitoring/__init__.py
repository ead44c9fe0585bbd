"""What mcastkit publishes to CloudWatch, and the alarms and dashboard that read it.

No CDK and no boto3 here: :mod:`.emf` is imported by the data plane, :mod:`.alarms` and
:mod:`.dashboard` describe what the compute stack builds in plain data.
"""
