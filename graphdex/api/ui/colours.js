// Node colours, the same as the Neo4j Browser style (docs/graphdex.grass; a test keeps the two equal), so a node
// looks alike in both tools: by node type, and an entity by its kind.

export const TYPE_COLOURS = {
  Document: "#2F4B7C",
  Chunk: "#D9DEE7",
  Entity: "#F2B134",
  Relation: "#9C7BD1",
  Community: "#3BA38E",
};

export const KIND_COLOURS = {
  Person: "#E4572E",
  Organization: "#17BEBB",
  Place: "#76B041",
  Location: "#5E9E3A",
  Facility: "#8D9E3A",
  Group: "#C06C84",
  Event: "#F67280",
  Work: "#355C7D",
  Product: "#6C5B7B",
  Law: "#8A6E4B",
  Language: "#A8A05E",
  Concept: "#F2B134",
  Topic: "#FFD166",
};

// An entity's colour comes from its kind's label in the Neo4j Browser (``label``, which the API sends with it).
export function colourOf(type, label) {
  if (type === "Entity" && label && KIND_COLOURS[label]) return KIND_COLOURS[label];
  return TYPE_COLOURS[type] || "#B8C0CC";
}

// Dark fills take white captions, light ones dark captions.
export function inkOn(colour) {
  const value = parseInt(colour.slice(1), 16);
  const luminance = 0.299 * (value >> 16) + 0.587 * ((value >> 8) & 255) + 0.114 * (value & 255);
  return luminance > 150 ? "#1F2430" : "#FFFFFF";
}
