// Unit names (GET /api/v1/units, from contracts/units.yaml): people read names, not codes.
import { get } from "./api.js";

let names = new Map();
let loaded = null;

/** Load the unit table once per session (quietly keeps codes if it cannot). */
export function loadUnits() {
  if (!loaded) {
    loaded = get("/units").then((data) => {
      const list = Array.isArray(data) ? data : data?.units || [];   // {units: [...]}
      names = new Map(list.map((u) => [u.id, u]));
      return names;
    }).catch(() => { loaded = null; return names; });
  }
  return loaded;
}

/** The unit's name, or its code when the table does not know it. */
export function unitName(code) {
  if (!code) return "—";
  return names.get(code)?.name || code;
}

/** Units of the table (optionally filtered), for pickers. */
export function unitList(filter = () => true) {
  return [...names.values()].filter(filter);
}
