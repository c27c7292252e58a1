import './globals.css';

export const metadata = {
  title: 'shipshape sample app',
  description: 'Campaigns, uploads and a live Socket.IO connection, deployed by shipshape',
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
