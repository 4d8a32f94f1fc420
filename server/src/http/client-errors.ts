/**
 * Requests Node's HTTP parser refuses before Express sees them (headers over the 16 KiB limit,
 * a malformed request line, headers that never finished arriving) are answered like every other
 * error: an RFC 9457 problem document, not Node's bare status line.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCode } from '../errors.ts';

interface ParserRefusal {
  status: number;
  title: string;
  code: ErrorCode;
  detail: string;
}

function refusalOf(err: NodeJS.ErrnoException): ParserRefusal {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return {
      status: 431,
      title: 'Request Header Fields Too Large',
      code: ErrorCode.badRequest,
      detail: 'The request line and headers exceed the server limit of 16 KiB.',
    };
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, title: 'Request Timeout', code: ErrorCode.badRequest, detail: 'The request did not arrive in time.' };
  }
  return { status: 400, title: 'Bad Request', code: ErrorCode.badRequest, detail: 'The request is not valid HTTP/1.1 and could not be parsed.' };
}

/** Answers refused requests with problem+json, then closes the connection (the parser is gone). */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A client that went away, or a connection a response was already written to: nothing to say.
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const refusal = refusalOf(err);
    const body = JSON.stringify({ type: 'about:blank', ...refusal });
    socket.end(
      `HTTP/1.1 ${refusal.status} ${refusal.title}\r\n` +
        'Content-Type: application/problem+json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  });
}
