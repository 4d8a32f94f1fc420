import { Migration } from '@mikro-orm/migrations';

/**
 * upload_sessions.received_map: the received chunks as a hex bitmap (chunk i is bit i % 8 of byte
 * i / 8), kept with received_bytes by triggers on upload_chunks, so a chunk request reads the list
 * with its session instead of every chunk row. Existing sessions are backfilled from their chunk
 * rows (received_bytes recounted too); instant uploads (no chunk rows) keep null.
 */
export class Migration20261203173000 extends Migration {

  override async up(): Promise<void> {
    await this.execute(`alter table \`upload_sessions\` add column \`received_map\` text null;`);

    const sessions = await this.execute(`select \`id\`, \`chunk_count\` from \`upload_sessions\` where \`deduplicated\` = 0`);
    const chunks = await this.execute(`select \`session_id\`, \`chunk_index\`, \`size_bytes\` from \`upload_chunks\``);
    const maps = new Map<string, { bits: Buffer; bytes: number }>();
    for (const s of sessions) maps.set(String(s.id), { bits: Buffer.alloc(Math.ceil(Number(s.chunk_count) / 8)), bytes: 0 });
    for (const c of chunks) {
      const map = maps.get(String(c.session_id));
      const index = Number(c.chunk_index);
      if (!map || index >> 3 >= map.bits.length) continue;
      map.bits[index >> 3]! |= 1 << (index & 7);
      map.bytes += Number(c.size_bytes);
    }
    for (const [id, map] of maps) {
      await this.execute(`update \`upload_sessions\` set \`received_map\` = ?, \`received_bytes\` = ? where \`id\` = ?`, [map.bits.toString('hex'), map.bytes, id]);
    }

    // Chunk i is hex digit P of the map (1-based; the low digit of byte i / 8 holds bits 0-3), bit B of it.
    const P = '(new.chunk_index / 8 * 2 + 2 - new.chunk_index / 4 % 2)';
    const B = '(1 << (new.chunk_index % 4))';
    const digit = (p: string) => `(instr('0123456789abcdef', substr(\`received_map\`, ${p}, 1)) - 1)`;
    const withDigit = (p: string, value: string) =>
      `case when length(\`received_map\`) >= ${p} then substr(\`received_map\`, 1, ${p} - 1) || substr('0123456789abcdef', ${value} + 1, 1) || substr(\`received_map\`, ${p} + 1) end`;
    await this.execute(
      `create trigger \`upload_chunks_received_insert\` after insert on \`upload_chunks\` begin ` +
        `update \`upload_sessions\` set \`received_bytes\` = \`received_bytes\` + new.\`size_bytes\`, ` +
        `\`received_map\` = ${withDigit(P, `(${digit(P)} | ${B})`)} where \`id\` = new.\`session_id\`; end;`,
    );
    const oldP = P.replaceAll('new.', 'old.');
    const oldB = B.replaceAll('new.', 'old.');
    await this.execute(
      `create trigger \`upload_chunks_received_delete\` after delete on \`upload_chunks\` begin ` +
        `update \`upload_sessions\` set \`received_bytes\` = \`received_bytes\` - old.\`size_bytes\`, ` +
        `\`received_map\` = ${withDigit(oldP, `(${digit(oldP)} & ~${oldB})`)} where \`id\` = old.\`session_id\`; end;`,
    );
  }

}
