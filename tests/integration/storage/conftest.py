from tests.support.s3 import s3_bucket, s3_endpoint

__all__ = ["s3_bucket", "s3_endpoint"]
