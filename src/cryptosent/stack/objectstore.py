"""The S3-compatible object store: versitygw (posix backend) built with `go install`."""

from __future__ import annotations

import urllib.error
import urllib.request

from cryptosent.config import Settings
from cryptosent.stack.process import StackError, port_open, read_pid, spawn, terminate, wait_until

MARKER = "versitygw"
START_TIMEOUT_S = 30.0


class ObjectStoreServer:
    """versitygw serving .stack/s3/data (one folder per bucket) on 127.0.0.1."""

    name = "s3"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.binary = settings.stack_dir / "bin" / "versitygw"
        self.data = settings.stack_dir / "s3" / "data"
        self.meta = settings.stack_dir / "s3" / "meta"
        self.log_file = settings.stack_dir / "logs" / "s3.log"
        self.pid_file = settings.stack_dir / "run" / "s3.pid"
        self.port = settings.stack_s3_port

    @property
    def address(self) -> str:
        """Where S3 clients connect."""
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        """Pid of the server started by `stack up`, if it runs."""
        return read_pid(self.pid_file)

    def healthy(self) -> bool:
        """The gateway answers HTTP (any S3 error response counts as alive)."""
        if not port_open(self.port):
            return False
        try:
            urllib.request.urlopen(self.address, timeout=2)  # noqa: S310 - fixed local URL
        except urllib.error.HTTPError:
            return True  # 403 for an unsigned request: the server is up
        except OSError:
            return False
        return True

    def start(self, access_key: str, secret_key: str) -> str:
        """Start the gateway (idempotent) and create the bucket; return what happened."""
        if self.pid() is None:
            if port_open(self.port):
                raise StackError(
                    f"port {self.port} on 127.0.0.1 is taken by a process cryptosent did not "
                    "start: stop it or set CRYPTOSENT_STACK_S3_PORT"
                )
            if not self.binary.exists():
                raise StackError(f"{self.binary} missing: run `make setup` first")
            self.data.mkdir(parents=True, exist_ok=True)
            self.meta.mkdir(parents=True, exist_ok=True)
            argv = [str(self.binary), "--port", f"127.0.0.1:{self.port}", "posix",
                    "--sidecar", str(self.meta.resolve()), str(self.data.resolve())]  # fmt: skip
            # credentials through the environment, never on the command line (ps shows argv);
            # the server gets only these two variables, nothing of ours
            env = {"ROOT_ACCESS_KEY": access_key, "ROOT_SECRET_KEY": secret_key}
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid = spawn(argv, log_file=self.log_file, pid_file=self.pid_file, env=env)
            wait_until(
                self.healthy, timeout=START_TIMEOUT_S, what="S3 (versitygw)",
                log_file=self.log_file, pid=pid,
            )  # fmt: skip
            outcome = "started"
        else:
            wait_until(self.healthy, timeout=START_TIMEOUT_S, what="S3", log_file=self.log_file)
            outcome = "already running"
        self.ensure_bucket(access_key, secret_key)
        return outcome

    def ensure_bucket(self, access_key: str, secret_key: str) -> None:
        """Create the stack's bucket if it does not exist."""
        import boto3
        from botocore.exceptions import ClientError

        s3 = boto3.client(
            "s3",
            endpoint_url=self.address,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=self.settings.aws_region,
        )
        try:
            s3.head_bucket(Bucket=self.settings.stack_s3_bucket)
        except ClientError:
            s3.create_bucket(Bucket=self.settings.stack_s3_bucket)

    def stop(self) -> str:
        """Stop the gateway if `stack up` started it."""
        pid = self.pid()
        if pid is None:
            return "not running"
        terminate(pid, marker=MARKER)
        self.pid_file.unlink(missing_ok=True)
        return "stopped"
