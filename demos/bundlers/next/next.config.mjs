export default {
  // A static site (out/): any server can send it with the COOP/COEP headers that threads need.
  output: 'export',
};
