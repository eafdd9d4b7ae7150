// Diagrams drawn at the size of the prose: tests/test_site.py measures every diagram at 1280 px
// and fails when its text is drawn smaller than the body's, spills out of its box, or the
// diagram is taller than the screen.
//
// The theme calls mermaid.initialize itself, with its own colours and 16 px sequence text, when
// the first diagram is drawn; this file loads after mermaid.min.js and before that moment, and
// adds our settings to the theme's.
(() => {
  const ours = {
    // Mermaid sizes each box for its text in the font it is told of, and the theme then draws
    // the text in the page's font: told the page's font, the boxes fit what is drawn.
    fontFamily: getComputedStyle(document.body).fontFamily,
    sequence: {
      // The actor boxes once, at the top: their copy at the bottom makes a diagram taller
      // than the screen, and a diagram that fits on the screen keeps its top in view.
      mirrorActors: false,
      // Narrow columns: a box grows to fit its name, and the space between two lifelines
      // grows to fit the longest message between them.
      width: 100,
      actorMargin: 20,
      // 50 px of blank on either side by default: the column is better spent on the diagram.
      diagramMarginX: 8,
      // The label of an alt, par or loop box ("alt", "par") in a box as tall as its 16 px text.
      labelBoxHeight: 24,
    },
    flowchart: {
      // A label breaks where its <br> says, not at mermaid's 200 px, which would make
      // every box three or four lines tall.
      wrappingWidth: 400,
      rankSpacing: 40,
      nodeSpacing: 30,
    },
  };
  const initialize = mermaid.initialize.bind(mermaid);
  mermaid.initialize = (theirs) => initialize({
    ...theirs,
    ...ours,
    sequence: {...theirs.sequence, ...ours.sequence},
    flowchart: {...theirs.flowchart, ...ours.flowchart},
  });
})();
