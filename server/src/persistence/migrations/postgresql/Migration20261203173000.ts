import { Migration } from '@mikro-orm/migrations';

/**
 * upload_sessions.received_map: the received chunks as a hex bitmap (chunk i is bit i % 8 of byte
 * i / 8: get_bit/set_bit numbering), kept with received_bytes by a trigger on upload_chunks, so a
 * chunk request reads the list with its session instead of every chunk row. Existing sessions are
 * backfilled from their chunk rows (received_bytes recounted too); instant uploads keep null. The
 * column is added first: its exclusive lock holds off chunk rows of running servers until commit.
 */
export class Migration20261203173000 extends Migration {

  override async up(): Promise<void> {
    await this.execute(`alter table "upload_sessions" add column "received_map" text null;`);

    const sessions = await this.execute(`select "id", "chunk_count" from "upload_sessions" where "deduplicated" = false`);
    const chunks = await this.execute(`select "session_id", "chunk_index", "size_bytes" from "upload_chunks"`);
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
      await this.execute(`update "upload_sessions" set "received_map" = ?, "received_bytes" = ? where "id" = ?`, [map.bits.toString('hex'), map.bytes, id]);
    }

    // A map too short for the index (never written so) becomes null: untracked, read from the rows.
    await this.execute(`create function "upload_chunks_received"() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    update "upload_sessions" set "received_bytes" = "received_bytes" + new."size_bytes",
      "received_map" = case when length("received_map") * 4 > new."chunk_index"
        then encode(set_bit(decode("received_map", 'hex'), new."chunk_index", 1), 'hex') end
    where "id" = new."session_id";
    return new;
  end if;
  update "upload_sessions" set "received_bytes" = "received_bytes" - old."size_bytes",
    "received_map" = case when length("received_map") * 4 > old."chunk_index"
      then encode(set_bit(decode("received_map", 'hex'), old."chunk_index", 0), 'hex') end
  where "id" = old."session_id";
  return old;
end
$$;`);
    await this.execute(
      `create trigger "upload_chunks_received" after insert or delete on "upload_chunks" for each row execute function "upload_chunks_received"();`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "upload_chunks_received" on "upload_chunks";`);
    this.addSql(`drop function if exists "upload_chunks_received"();`);
    this.addSql(`alter table "upload_sessions" drop column "received_map";`);
  }

}
