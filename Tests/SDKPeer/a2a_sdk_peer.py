"""A real A2A peer built on the official Python SDK (a2a-sdk 1.3.0), for tests.

The Swift tests start this script as a child process to check the delegation
worker against an A2A server that is not our own code. It is a plain SDK
deployment (DefaultRequestHandler + InMemoryTaskStore + JSON-RPC routes), so
everything the SDK does by default (blocking vs. returnImmediately, error codes,
version checks, task shapes) is what the tests see.

Usage:
    python a2a_sdk_peer.py [--compat] [--task-seconds 2.5]
                           [--outcome completed|failed] [--host 127.0.0.1]

--compat turns on the SDK's v0.3 JSON-RPC adapter on the same endpoint
(`enable_v0_3_compat=True`); without it the server speaks 1.0 only, and 1.0
requests must carry the header `A2A-Version: 1.0`.

It binds port 0 itself, prints one line `PORT <n>` to stdout, then serves:
    GET  /.well-known/agent-card.json   the SDK's agent card
    POST /                              the SDK's JSON-RPC endpoint
    GET  /stats                         test side channel:
        {"executions": {messageId: count}, "cancels": [taskId, ...],
         "requests": [{"method", "a2a_version", "params_configuration"}, ...]}
Each task goes submitted -> working, sleeps --task-seconds, then completes with
an artifact `done: <text>` or fails with the status message
`the task failed on purpose`. Logs go to stderr. SIGTERM/SIGINT exit cleanly.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys

from collections import Counter
from typing import Any

import uvicorn

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from a2a.helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
)


log = logging.getLogger('a2a_sdk_peer')


class Stats:
    """What the tests can read back through GET /stats."""

    def __init__(self) -> None:
        self.executions: Counter[str] = Counter()
        self.cancels: list[str] = []
        self.requests: list[dict[str, Any]] = []

    def as_json(self) -> dict[str, Any]:
        return {
            'executions': dict(self.executions),
            'cancels': list(self.cancels),
            'requests': list(self.requests),
        }


class PeerExecutor(AgentExecutor):
    """submitted -> working -> (sleep) -> completed with artifact | failed."""

    def __init__(self, stats: Stats, task_seconds: float, outcome: str):
        self.stats = stats
        self.task_seconds = task_seconds
        self.outcome = outcome

    async def execute(
        self, context: RequestContext, event_queue: EventQueue
    ) -> None:
        message = context.message
        assert message is not None
        self.stats.executions[message.message_id] += 1
        text = context.get_user_input()
        log.info('execute task=%s message=%s text=%r',
                 context.task_id, message.message_id, text)

        if context.current_task is None:
            # The initial Task event: state submitted, history = [message].
            await event_queue.enqueue_event(new_task_from_user_message(message))
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()

        # Cancellation cancels this coroutine, which interrupts the sleep.
        await asyncio.sleep(self.task_seconds)

        if self.outcome == 'failed':
            await updater.failed(updater.new_agent_message(
                [Part(text='the task failed on purpose')]))
        else:
            await updater.add_artifact(
                [Part(text=f'done: {text}')], name='result')
            await updater.complete()

    async def cancel(
        self, context: RequestContext, event_queue: EventQueue
    ) -> None:
        log.info('cancel task=%s', context.task_id)
        self.stats.cancels.append(context.task_id)
        await TaskUpdater(
            event_queue, context.task_id, context.context_id).cancel()


def build_card(url: str, compat: bool) -> AgentCard:
    interfaces = [AgentInterface(
        url=url, protocol_binding='JSONRPC', protocol_version='1.0')]
    if compat:  # advertise the 0.3 binding as well (same endpoint)
        interfaces.append(AgentInterface(
            url=url, protocol_binding='JSONRPC', protocol_version='0.3'))
    return AgentCard(
        name='SDK peer',
        description='a2a-sdk test peer for the delegation worker',
        version='1.0.0',
        supported_interfaces=interfaces,
        capabilities=AgentCapabilities(
            streaming=False, push_notifications=False),
        default_input_modes=['text/plain'],
        default_output_modes=['text/plain'],
        skills=[AgentSkill(
            id='echo', name='echo', description='answers done: <text>',
            tags=['test'])],
    )


def build_app(args: argparse.Namespace, port: int, stats: Stats) -> Starlette:
    card = build_card(f'http://{args.host}:{port}/', args.compat)
    handler = DefaultRequestHandler(
        agent_executor=PeerExecutor(stats, args.task_seconds, args.outcome),
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    (sdk_rpc,) = create_jsonrpc_routes(
        handler, rpc_url='/', enable_v0_3_compat=args.compat)

    async def rpc(request: Request):
        # Record the request, then hand the same Request (body cached) to the SDK.
        entry: dict[str, Any] = {
            'method': None,
            'a2a_version': request.headers.get('a2a-version'),
            'params_configuration': None,
        }
        try:
            body = await request.json()
            if isinstance(body, dict):
                entry['method'] = body.get('method')
                params = body.get('params')
                if isinstance(params, dict):
                    entry['params_configuration'] = params.get('configuration')
        except Exception:  # noqa: BLE001 - the SDK answers bad JSON itself
            pass
        stats.requests.append(entry)
        return await sdk_rpc.endpoint(request)

    async def stats_route(_: Request) -> JSONResponse:
        return JSONResponse(stats.as_json())

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette):
        yield
        await handler.aclose()  # cancel still-running tasks on shutdown

    routes = [
        *create_agent_card_routes(card),
        Route('/', rpc, methods=['POST']),
        Route('/stats', stats_route, methods=['GET']),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class Server(uvicorn.Server):
    """uvicorn.Server that stops on SIGTERM/SIGINT without re-raising them."""

    @contextlib.contextmanager
    def capture_signals(self):
        def on_signal(sig: int, _frame: Any) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

        previous = {s: signal.signal(s, on_signal)
                    for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--compat', action='store_true',
                        help='enable the SDK v0.3 JSON-RPC adapter')
    parser.add_argument('--task-seconds', type=float, default=0.0)
    parser.add_argument('--outcome', choices=['completed', 'failed'],
                        default='completed')
    parser.add_argument('--host', default='127.0.0.1')
    args = parser.parse_args()

    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO,
        format='%(asctime)s %(levelname)s %(name)s: %(message)s')

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, 0))
    sock.listen(128)
    port = sock.getsockname()[1]

    app = build_app(args, port, Stats())
    config = uvicorn.Config(app, log_config=None, access_log=False,
                            timeout_graceful_shutdown=1)
    print(f'PORT {port}', flush=True)
    asyncio.run(Server(config).serve(sockets=[sock]))
    log.info('stopped')


if __name__ == '__main__':
    main()
